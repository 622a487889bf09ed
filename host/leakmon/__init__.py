"""leakmon: leak monitoring for pressurized volumes.

The node firmware streams raw sensor counts in framed packets (PROTOCOL.md); this
package decodes them, compensates them in float64 and turns them into leak rates.
"""

__version__ = "0.1.0"
