"""The operator's use cases, for the dashboard's admin section and `clawfleet admin`: who is an
admin (and the setup link that makes the first), listings of users and instances, suspensions
apart from billing's, the audit log's search, and broadcasts to every bot user."""
