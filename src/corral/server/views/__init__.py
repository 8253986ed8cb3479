"""JSON shapes of resources and paged collections: how the REST API, the event stream and the hub render what
the store and the in-memory state hold. Pure rendering: nothing here writes or talks to an agent."""
