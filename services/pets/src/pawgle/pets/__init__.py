"""PawGle pets service: pets, their photos and QR tags."""
