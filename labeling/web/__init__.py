"""The browser app's shell: Django serves the built front end (frontend/dist) on the same origin as the API."""
