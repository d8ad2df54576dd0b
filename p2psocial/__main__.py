from __future__ import annotations

from p2psocial.cli import main

main()
