"""The provisioning Telegram bot: thin handlers over the provisioner's services."""
