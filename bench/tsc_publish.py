#!/usr/bin/env python3
"""Publishes FILE with Tableau's Python client (TSC) to the emulator; prints the seconds spent
in the publish call. Usage: tsc_publish.py URL FILE NAME (chunk size from TSC_CHUNK_SIZE_MB)."""
import sys
import time

import tableauserverclient as TSC

url, path, name = sys.argv[1:4]
server = TSC.Server(url, use_server_version=True)
with server.auth.sign_in(TSC.PersonalAccessTokenAuth("ci", "ci-secret", site_id="")):
    project = next(p for p in TSC.Pager(server.projects) if p.name == "default" and p.parent_id is None)
    item = TSC.DatasourceItem(project.id, name=name)
    started = time.perf_counter()
    server.datasources.publish(item, path, TSC.Server.PublishMode.Overwrite)
    print(f"{time.perf_counter() - started:.6f}")
