"""The web UI: server-rendered Jinja2 pages with htmx and its SSE extension vendored in
``static/vendor`` (no CDN, no Node build). ``site.mount`` adds it to the FastAPI app."""
