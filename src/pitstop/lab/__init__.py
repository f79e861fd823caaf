"""The FRR lab: an eBGP spine-leaf fabric of real FRR routers in network namespaces on one
machine, for trying pitstop's ``frr`` driver and proving that maintenance is hitless.

``topology`` plans it (names, addresses, FRR configuration), ``fabric`` builds and removes it
with a state file, ``flows`` sends sequence-numbered UDP between its hosts, ``inventory``
describes its routers as pitstop devices. The lab imports no other pitstop package: it is a
tool beside the engine, not a driver.
"""
