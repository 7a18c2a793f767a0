"""PawGle reports service: lost and found reports on the map."""
