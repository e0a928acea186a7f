"""ServiceDesk Plus v3 on the wire: envelopes, input_data, list_info search, request objects."""
