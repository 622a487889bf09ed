"""The site description: which segments (modules, chambers) a pressurized site has,
their free volumes, the hatches and valves between them with their schedules, and
which sensor sits in which segment. It is what the mass balance and the leak verdict
read. One TOML format with the scenario files (hardware/scenarios/): every scenario
is a valid site file; the simulation-only keys (pressures, walls, leaks, noise,
faults) are checked but not kept.

API (a Site and everything in it is frozen):

    site = load_site("hardware/scenarios/station_hatches.toml")   # or a shipped name
    site.name, site.path                      # str
    site.total_volume_m3                      # float | None: the file's stated total
    site.segments                             # tuple[Segment, ...]: .name, .volume_m3
    site.segment("zvezda")                    # Segment (ConfigError if unknown)
    site.links                                # tuple[Link, ...]: hatches and valves
    #   Link.kind "hatch" | "valve"; .name; .a, .b: the two sides, segment names or a
    #   boundary (site.boundaries: "vacuum", "ambient", [[supplies]] names);
    #   .initially: open fraction before the first change; .schedule:
    #   tuple[(t_s, open fraction 0..1), ...], increasing t_s, piecewise constant
    #   (a change at t_s holds from t_s on, as in the simulator).
    #   Link.open_fraction(t_s) -> np.ndarray of the fraction at each time.
    site.sensors                              # tuple[Sensor, ...]
    #   Sensor: .chip, .bus, .addr (7-bit), .mux_addr (None: no TCA9548A),
    #   .mux_channel, .segment (a segment name: every sensor is in one);
    #   .mux: the mux channel as the node's HELLO reports it (0xFF: none).
    site.sensor_at(bus, mux, addr)            # Sensor | None, keyed like a HELLO channel
    site.sensors_in("zvezda")                 # tuple[Sensor, ...]
    site.hatch_state(t_s)                     # dict link name -> np.ndarray open fraction
    site.changes()                            # sorted times (s) at which any link changes
    site.groups(t_s)                          # connected segments at one time: a tuple of
    #   tuples of segment names, joined by links open (fraction > 0) between segments;
    #   links to a boundary join nothing.

Errors are ConfigError (a ValueError) with one line naming the file, the table
(with its entry number) and the key: unknown segment names, non-positive volumes, a
segment larger than total_volume_m3 or segments that do not add up to it, a sensor
with no segment where there are several, two sensors at one bus address.
Hatch state from an operator or detected from the data is not in the file: callers
merge those changes over the schedule.
"""
