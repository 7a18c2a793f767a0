"""PawGle matcher service: candidate matches between found reports and lost pets."""
