"""The trio shell: connections, replication, discovery. Moves bytes; decides nothing."""

from __future__ import annotations
