"""The admin section of the dashboard (/admin/...): for admins only, every other caller gets
404 as for a page that does not exist. Each module one part: the setup link, users, instances
with their suspensions, the audit log, broadcasts."""

from web.pages.admin import audit, broadcasts, instances, setup, suspending, users

ROUTES = [*setup.routes, *users.routes, *instances.routes, *suspending.routes, *audit.routes, *broadcasts.routes]
