"""`ten serve`: the server process (HTTP serving in :mod:`tenement.server.http`)."""
