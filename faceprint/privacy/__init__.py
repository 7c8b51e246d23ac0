"""Protecting stored templates and the people they belong to.

- :mod:`~faceprint.privacy.crypto`: gallery keys and AES-256-GCM encryption of templates at rest;
- :mod:`~faceprint.privacy.cancelable`: cancelable (keyed, revocable) template transforms;
- :mod:`~faceprint.privacy.audit`: the append-only, tamper-evident audit log;
- :mod:`~faceprint.privacy.ood`: the out-of-domain check that keeps non-face templates out.

Galleries (:mod:`faceprint.gallery`) apply the key and the transform; nothing here opens a gallery.
"""
