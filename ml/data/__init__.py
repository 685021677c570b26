"""ml's data layer, apart from the networks: the vocabulary's records on disk (phantom ``truth.json``), the
pixel <-> patient geometry of a slice stack, and the readers of snapshot and phantom folders."""
