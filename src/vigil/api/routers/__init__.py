"""One router per resource; :func:`vigil.api.app.create_app` mounts them."""
