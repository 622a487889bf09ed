# Runs under MicroPython (and CPython): the scenario physics from a JSON file
# {"physics": {...}, "times": [...]}; prints one JSON line per time with
# [t, [p, T] per segment, [leak kg/s per segment]], then the step count.
import json
import sys

import physics

with open(sys.argv[1]) as f:
    job = json.load(f)
plant = physics.Plant(job["physics"])
nseg = len(plant.vol)
for t in job["times"]:
    row = [t]
    for i in range(nseg):
        p, temp = plant.state(i, t)
        row.append([repr(p), repr(temp), repr(plant.leak_kg_per_s(i, t))])
    print(json.dumps(row))
print(json.dumps({"steps": plant.steps}))
