"""Device scan: inventory, applicability, the search-criteria grammar and the WUA-style API."""
