"""The HTTP layer: routes, request and response structs, authentication, and the single place
where errors become RFC 9457 problem documents."""
