"""The HTTP endpoint's app: /metrics, /healthz, /place, the web console and the HTTP API (Flask)."""
