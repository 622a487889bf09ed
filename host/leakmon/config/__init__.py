"""leakmon's files, read and checked in one place: scenarios and site descriptions
(one TOML vocabulary, leakmon.config.document), recipes and board profiles.

A low layer (above units and errors only), so analysis, the simulator, deploy and
the CLI all read files the same way and report a bad one in the same words: one
line naming the file, the table and the key (leakmon.config.loader).
"""
