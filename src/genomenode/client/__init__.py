"""The researcher's side: sign in to a broker, talk to a node's access API.

``tokens`` keeps sign-ins (0600, never printed), ``oidc`` signs in with the OAuth
2.0 device grant and refreshes tokens, ``node`` applies for datasets and lists
applications and grants. ``genomenode login``, ``apply``, ``applications``,
``grants`` and ``fetch`` are thin over these.
"""
