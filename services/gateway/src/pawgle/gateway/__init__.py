"""PawGle gateway service: the one public origin: routes, CORS, limits."""
