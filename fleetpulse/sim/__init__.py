"""The fleet simulator: virtual hosts, timed faults, and the ground truth to judge the down-checker by.

Layers, each its own module, so the interesting part is testable without Kafka:

* :mod:`~fleetpulse.sim.scenario`: the scenario model (fleet, timing, faults) and its loader,
  a YAML file validated with ``file:line: message`` errors (the format is in its docstring);
* :mod:`~fleetpulse.sim.faults`: the fault kinds (crash, reboot, restart, partition, ingest
  outage, flap, clock skew, slow delivery);
* :mod:`~fleetpulse.sim.timeline`: the pure, deterministic play of a scenario: what each host
  emits and when, if ever, it reaches Kafka;
* :mod:`~fleetpulse.sim.truth`: what really happened in a run and the alerts each fault owes;
* :mod:`~fleetpulse.sim.runner`: plays the timeline in real time into Kafka and writes the truth;
* :mod:`~fleetpulse.sim.score`: scores a run's alerts against its truth;
* :mod:`~fleetpulse.sim.judge`: plays a scenario through the pure down-check logic and checks
  the down-checker's promise as invariants (the generated-scenario tests use it).

Adding a fault kind: one :class:`~fleetpulse.sim.faults.FaultKind` subclass (its parsing, its
effect on the timeline, the alerts it owes) and its entry in ``faults.KINDS``; the loader,
timeline, truth, dump and judge find it there. Document it in the scenario format
(:mod:`~fleetpulse.sim.scenario`, whose example the tests load) and give it tests.
"""
