# A stdout callback for test/ansible.system.test.ts: every task's result per host as one JSON
# document at the end of the play. Debian's ansible-core 2.14 has no json callback (it moved to
# the ansible.posix collection, which is not installed), and parsing the default screen output
# would test its layout rather than the modules' results.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: op_results
type: stdout
short_description: "every task's result per host, as JSON, for op's tests"
description: Prints one JSON document of the tasks, each with its result per host, once the playbook ends.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "op_results"

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.tasks = {}

    def _record(self, result, **flags):
        entry = dict(result._result)
        entry.update(flags)
        self.tasks.setdefault(result._task.get_name(), {})[result._host.get_name()] = entry

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        self._display.display(json.dumps({"tasks": self.tasks}, sort_keys=True))
