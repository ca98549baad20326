#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) op contributors
# MIT License (see LICENSE at the root of the op repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: facts
short_description: The live state op sees on a host, as facts
version_added: "0.1.0"
description:
  - Runs C(op query --json) on the target and returns what each of op's plugins reads of the host
    (links, routes and Open vSwitch rows; containers, images, projects, profiles, networks and volumes; nftables tables;
    sysctl parameters) as the fact C(op).
  - A plugin whose daemon or tool is missing (no Incus, say) appears with an C(unavailable) error of its own, not as a failure.
  - It only reads, and changes nothing on the host.
options:
  plugin:
    description:
      - Query only this plugin (op's C(--plugin)); all of them when not given.
    type: str
extends_documentation_fragment:
  - op.host.op
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
  facts:
    support: full
    description: Sets the fact C(op).
author:
  - op contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read what op sees
  op.host.facts:

- name: Only the firewall
  op.host.facts:
    plugin: nftables

- name: List the nftables tables
  ansible.builtin.debug:
    msg: "{{ ansible_facts.op.nftables }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: complex
  contains:
    op:
      description:
        - C(op query --json) as it is, under each plugin's name, with its C(format_version).
      returned: always
      type: dict
      sample: {"format_version": "1.0", "nftables": {"tables": []}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.op.host.plugins.module_utils.op_cli import COMMON_ARGUMENT_SPEC, OpFailure, fail, run_op


def main():
    argument_spec = dict(plugin=dict(type="str"))
    argument_spec.update(COMMON_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    arguments = ["query"]
    if module.params["plugin"]:
        arguments += ["--plugin", module.params["plugin"]]
    try:
        rc, document, stderr = run_op(module, arguments)
    except OpFailure as failure:
        fail(module, failure)
    if rc != 0:
        module.fail_json(msg="op query exited %d" % rc, rc=rc, stderr=stderr)
    module.exit_json(changed=False, ansible_facts=dict(op=document))


if __name__ == "__main__":
    main()
