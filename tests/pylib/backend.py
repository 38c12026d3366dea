"""A vhost-user back end under test (nitro-card-ebs, qemu-storage-daemon, ...): started in
its own process group with its output in a log file, ready once its socket exists."""
import os
import signal
import subprocess
import time

import pytest


class BackEnd:
    def __init__(self, argv, sock, log_path, env=None, what=None, pass_fds=()):
        self.sock = sock
        self.log = open(log_path, "w+")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                     pass_fds=pass_fds)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"{what or argv[0]} did not create its socket:\n{self.output()}")
            time.sleep(0.02)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def kill(self):
        """SIGKILL to the whole process group, if it still runs."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
