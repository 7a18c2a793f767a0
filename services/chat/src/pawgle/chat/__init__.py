"""PawGle chat service: private conversations between finders and owners."""
