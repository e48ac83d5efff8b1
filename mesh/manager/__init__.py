"""The manager: the lab's control plane (istiod's role), with the shared directory as its API.

It watches ``$MESH_DIR/config`` (Istio YAML) and ``$MESH_DIR/registry`` (one record per pod),
validates the config with the same loader and analyzer as ``meshctl analyze``, compiles one
snapshot (config plus ready endpoints) and publishes it atomically to ``$MESH_DIR/snapshot``.

Modules: ``meshdir`` (layout, atomic writes, the config lock), ``registry`` (records, TTL,
endpoints), ``compile`` (pure: next snapshot, version, what blocks), ``debounce`` (pure),
``configdir`` (apply/delete planning on the config directory, used by ``meshctl``),
``observe`` (status and proxy-status views, used by ``meshctl`` and ``meshlab``) and
``service`` (the loop). ``python -m mesh.manager --mesh-dir DIR`` runs it.
"""
