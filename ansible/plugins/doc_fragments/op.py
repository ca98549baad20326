# -*- coding: utf-8 -*-
# Copyright (c) op contributors
# MIT License (see LICENSE at the root of the op repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The options every op.host module passes to op the same way (module_utils/op_cli.py).
    DOCUMENTATION = r"""
options:
  op_path:
    description:
      - The op program on the target.
      - When not given, C(op) is looked up in the target's PATH (the Debian package installs C(/usr/bin/op)).
    type: path
  ledger:
    description:
      - The ledger directory op records into and reads (op's C(--ledger)).
      - When not given, op's default applies (C($OP_LEDGER), else C(/var/lib/op/ledger)).
    type: path
  ledger_key:
    description:
      - The ledger's signing key (op's C(--ledger-key)); a path, not the key itself.
      - When not given, op's default applies (C($OP_LEDGER_KEY), else C(/etc/op/ledger.key)).
    type: path
requirements:
  - op on the target, run as root (it changes the host's network, firewall and containers).
notes:
  - The modules read op's JSON contract, C(format_version) 1.x, and refuse a document of another major version.
  - Other settings of op (C(OP_LOCK), C(OP_INCUS_SOCKET)...) are environment variables; set them with the task's C(environment) keyword.
"""
