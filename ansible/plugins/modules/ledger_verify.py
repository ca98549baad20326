#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) op contributors
# MIT License (see LICENSE at the root of the op repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ledger_verify
short_description: Check op's ledger on a host
version_added: "0.1.0"
description:
  - Runs C(op ledger verify --json) on the target. It checks the SHA-256 chain of every record and the signed
    checkpoints, and fails naming the first bad record when the ledger has been altered.
  - It only reads, and changes nothing on the host.
options:
  trusted:
    description:
      - A checkpoint saved earlier with C(op ledger checkpoint), on the target; the ledger must extend it
        (op's C(--trusted)).
    type: path
extends_documentation_fragment:
  - op.host.op
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
author:
  - op contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: The ledger is intact
  op.host.ledger_verify:

- name: The ledger still extends the checkpoint kept on the target
  op.host.ledger_verify:
    trusted: /root/op.checkpoint
"""

RETURN = r"""
ok:
  description: Whether the chain and the checkpoints verify (the module fails when not).
  returned: always
  type: bool
size:
  description: How many records the ledger holds.
  returned: always
  type: int
  sample: 42
problem:
  description: What is wrong, naming the first bad record.
  returned: failure
  type: str
checkpoint:
  description: The latest signed checkpoint that was verified, when there is one.
  returned: when the ledger has a checkpoint
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.op.host.plugins.module_utils.op_cli import COMMON_ARGUMENT_SPEC, OpFailure, fail, run_op


def main():
    argument_spec = dict(trusted=dict(type="path"))
    argument_spec.update(COMMON_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    arguments = ["ledger", "verify"]
    if module.params["trusted"]:
        arguments += ["--trusted", module.params["trusted"]]
    try:
        rc, document, stderr = run_op(module, arguments)
    except OpFailure as failure:
        fail(module, failure)
    result = dict((key, value) for key, value in document.items() if key != "format_version")
    if not document.get("ok"):
        module.fail_json(msg="op's ledger does not verify: %s" % document.get("problem"), rc=rc, stderr=stderr, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
