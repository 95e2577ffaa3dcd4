"""Contract tests: what the tests send to the GoHighLevel and Slack fakes is checked against the
services' published contracts (GoHighLevel's OpenAPI files, Slack's Block Kit limits)."""
