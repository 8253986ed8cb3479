"""What every layer of the server uses: the event bus and its history, the advertised URL, the base of request
bodies."""
