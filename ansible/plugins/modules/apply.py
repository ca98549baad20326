#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) op contributors
# MIT License (see LICENSE at the root of the op repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: apply
short_description: Make a host match an op state file
version_added: "0.1.0"
description:
  - Runs C(op apply --json) on the target with a state file, or C(op plan --json) in check mode, and reports
    what op planned and did.
  - C(changed) is true exactly when op planned actions; the run, the ledger's head and every action are returned.
  - With C(--diff), each action is shown as a diff headed with its plugin, resource kind and id, from what op
    describes of it; a modify as its changed fields, one line each with its value before and after, a create or delete as
    the resource's whole state.
options:
  state_file:
    description:
      - A state file (JSON or YAML) already on the target.
      - Exactly one of O(state_file) and O(state) is given.
    type: path
  state:
    description:
      - The state itself, a mapping (written as JSON) or text (written as it is, JSON or YAML).
      - The module writes it atomically to O(state_dest), mode 0600, before op reads it; in check mode it
        writes it to a temporary file beside O(state_dest) and removes it afterwards.
      - Relative paths inside the state (C(.pub) files, image tarballs) are taken from the directory of O(state_dest).
    type: raw
  state_dest:
    description:
      - Where the module keeps the state given as O(state). Its directory is created (0700) when missing.
      - A name ending in C(.yaml) or C(.yml) makes op read YAML; any other name, JSON.
    type: path
    default: /etc/op/ansible.state.json
  adopt:
    description:
      - Let op adopt every object the file names that op did not create (op's C(--adopt)).
    type: bool
    default: false
  allow_uplink:
    description:
      - Let op change the link carrying the default route (op's C(--allow-uplink)).
      - C(op plan) has no such flag, so in check mode a plan that touches the uplink is refused as C(op plan) refuses it.
    type: bool
    default: false
  allow_restart:
    description:
      - Let op restart running containers whose change Incus takes only at start (op's C(--allow-restart)).
    type: bool
    default: false
  plugins:
    description:
      - Read, plan and apply only these plugins' sections (op's C(--plugin), repeated); the whole file is still checked.
    type: list
    elements: str
  lock_timeout:
    description:
      - Seconds to wait for another C(op apply) holding the host's lock (op's C(--lock-timeout)); not used in check mode.
    type: int
    default: 0
extends_documentation_fragment:
  - op.host.op
attributes:
  check_mode:
    support: full
    description: Check mode runs C(op plan), which reads the host and changes nothing.
  diff_mode:
    support: full
    description: One diff per planned action, its changed fields (a modify) or the resource's whole state (a create or delete).
author:
  - op contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Apply the host's state file
  op.host.apply:
    state_file: /etc/op/state.json

- name: Push a state and apply it, recording into a ledger of its own
  op.host.apply:
    state:
      version: 1
      plugins:
        nftables:
          tables:
            - family: inet
              name: edge
              chains:
                - {name: input, type: filter, hook: input, priority: 10, policy: accept,
                   rules: ["ip saddr 198.18.0.0/15 counter drop"]}
    ledger: /var/lib/op/ledger
  register: applied

- name: Show the run the ledger recorded
  ansible.builtin.debug:
    msg: "run {{ applied.run }}, ledger head {{ applied.ledger_head }}"
"""

RETURN = r"""
changed:
  description: Whether op planned actions (in check mode, whether it would change the host).
  returned: always
  type: bool
actions:
  description:
    - The planned actions as op's JSON contract describes them
      (C(action), C(plugin), C(resource), C(id), C(reason), C(before), C(after), C(changes), C(replace), C(restart)).
  returned: always
  type: list
  elements: dict
  sample: [{"action": "create", "plugin": "network", "resource": "link", "id": "opan0", "reason": "create dummy"}]
summary:
  description: How many creates, modifies and deletes op planned.
  returned: always
  type: dict
run:
  description: The ledger's id of the run; null in check mode and when nothing changed.
  returned: always
  type: str
ledger_head:
  description: The ledger's head hash after the run; null in check mode or when op reports none.
  returned: always
  type: str
converged:
  description: Whether the host matches the file (after the apply; in check mode, whether nothing is planned).
  returned: always
  type: bool
outcomes:
  description: How each action ended (C(ok), C(failed), C(skipped)...); empty in check mode.
  returned: always
  type: list
  elements: dict
state_file:
  description: The state file op read, O(state_file) or O(state_dest) (in check mode, where O(state) would be written).
  returned: always
  type: str
diff:
  description: One entry per action, headed with its plugin, kind and id, its changed fields or whole state before and after.
  returned: always
  type: list
  elements: dict
hint:
  description: op's hint on what to do about an error.
  returned: failure
  type: str
details:
  description: op's details of an error, each with the JSON path (C(path)) of a problem in the file and its C(message).
  returned: failure
  type: list
  elements: dict
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.module_utils.six import string_types
from ansible_collections.op.host.plugins.module_utils.op_cli import (
    COMMON_ARGUMENT_SPEC,
    OpFailure,
    error_facts,
    error_message,
    fail,
    run_op,
)


def state_text(module):
    """The bytes of O(state): a mapping as JSON; text as it is, but only JSON for a .json name."""
    state = module.params["state"]
    dest = module.params["state_dest"]
    if not isinstance(state, string_types):
        return to_bytes(json.dumps(state, indent=2, sort_keys=True) + "\n")
    if not dest.endswith((".yaml", ".yml")):
        try:
            json.loads(state)
        except ValueError as error:
            module.fail_json(
                msg="state is text that is not JSON (%s), and state_dest %s is read as JSON" % (to_native(error), dest),
                hint="give state_dest a .yaml or .yml name for a YAML state, or pass the state as a mapping",
            )
    return to_bytes(state)


def write_state(module, content):
    """Writes O(state) for op; returns (path op reads, temporary path to remove or None)."""
    dest = module.params["state_dest"]
    directory = os.path.dirname(dest) or "."
    if module.check_mode:
        # Nothing of the target changes in check mode: the state goes to a temporary file beside
        # its destination (so its relative paths resolve as they will), or in Ansible's tmpdir.
        where = directory if os.path.isdir(directory) else module.tmpdir
        fd, path = tempfile.mkstemp(dir=where, prefix=".op-check-", suffix=os.path.splitext(dest)[1])
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        return path, path
    if os.path.isfile(dest):
        with open(dest, "rb") as handle:
            if handle.read() == content and os.stat(dest).st_mode & 0o777 == 0o600:
                return dest, None
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    # mkstemp makes the file 0600; a rename within the directory replaces dest atomically, so
    # op (or a watch) never reads half a file.
    fd, path = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(dest) + ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(path, dest)
    except Exception:
        os.unlink(path)
        raise
    return dest, None


def op_arguments(module, path):
    """`plan` (check mode) or `apply` of `path`, with the flags the options ask for."""
    params = module.params
    arguments = ["plan" if module.check_mode else "apply", path]
    if params["adopt"]:
        arguments.append("--adopt")
    if params["allow_restart"]:
        arguments.append("--allow-restart")
    for plugin in params["plugins"] or []:
        arguments += ["--plugin", plugin]
    if not module.check_mode:
        if params["allow_uplink"]:
            arguments.append("--allow-uplink")
        arguments += ["--lock-timeout", str(params["lock_timeout"])]
    return arguments


def action_name(action):
    # An op older than the JSON contract calls the action `kind` and has no `adopt`.
    return action.get("action") or action.get("kind")


def change_lines(changes, side):
    """One line per changed field (`FIELD: VALUE`) of one side of a modify's changes."""
    lines = []
    for change in changes:
        value = change.get(side)
        if value is not None:
            text = value if isinstance(value, string_types) else json.dumps(value, sort_keys=True)
            lines.append("%s: %s\n" % (change.get("field"), text))
    return "".join(lines)


def diff_of(action):
    """One entry of Ansible's diff, headed with the resource's plugin, kind and id.

    A modify shows its per-field changes (the whole states would also differ in what op reads
    but a file does not say, such as a link's MAC); a create or delete shows the whole state.
    """
    header = "%s %s %s (%s)" % (action.get("plugin"), action.get("resource"), action.get("id"), action_name(action))
    changes = action.get("changes") or []
    if changes:
        before, after = change_lines(changes, "before"), change_lines(changes, "after")
    elif "before" in action or "after" in action:
        before, after = action.get("before"), action.get("after")
    else:
        # An op older than the JSON contract gives neither: there is only the reason to show.
        before, after = "", (action.get("reason") or "") + "\n"
    return dict(before_header=header, after_header=header, before=before, after=after)


def main():
    argument_spec = dict(
        state_file=dict(type="path"),
        state=dict(type="raw"),
        state_dest=dict(type="path", default="/etc/op/ansible.state.json"),
        adopt=dict(type="bool", default=False),
        allow_uplink=dict(type="bool", default=False),
        allow_restart=dict(type="bool", default=False),
        plugins=dict(type="list", elements="str"),
        lock_timeout=dict(type="int", default=0),
    )
    argument_spec.update(COMMON_ARGUMENT_SPEC)
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("state_file", "state")],
        required_one_of=[("state_file", "state")],
        supports_check_mode=True,
    )

    temporary = None
    if module.params["state"] is not None:
        path, temporary = write_state(module, state_text(module))
    else:
        path = module.params["state_file"]
    try:
        rc, document, stderr = run_op(module, op_arguments(module, path))
    except OpFailure as failure:
        fail(module, failure, changed=False)
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)

    actions = document.get("actions") or []
    outcomes = document.get("outcomes") or []
    result = dict(
        changed=len(actions) > 0,
        actions=actions,
        summary=document.get("summary") or {},
        run=document.get("run"),
        ledger_head=document.get("ledger_head"),
        converged=document.get("converged", len(actions) == 0),
        outcomes=outcomes,
        state_file=module.params["state_file"] or module.params["state_dest"],
        diff=[diff_of(action) for action in actions],
    )
    if rc != 0:
        # An apply that failed part-way: what it did is reported with op's error; the host
        # changed when any action succeeded.
        error = document.get("error") if isinstance(document.get("error"), dict) else {}
        result.update(error_facts(error))
        result["changed"] = any(outcome.get("status") == "ok" for outcome in outcomes)
        module.fail_json(msg=error_message(error) if error else "op exited %d" % rc, rc=rc, stderr=stderr, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
