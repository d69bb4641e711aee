"""Run notebooks one after another, each in its own new Jupyter kernel, without paying the imports
every time.

``python notebook_kernels.py serve`` reads notebook paths on stdin, one per line, executes each in
place with nbclient (in this process's environment, its folder as working directory) and answers one
line per notebook on stdout: ``NOTEBOOK-RESULT {"seconds": ..., "error": ...}``.
tests/test_site_notebooks.py starts it once, in fast mode, inside the network namespace, and sends
it every downloaded notebook.

Each notebook gets a new ipykernel *process* with an empty namespace, as ``jupyter`` would start it.
What is saved is the start-up: before anything runs, this process imports what every notebook
imports (numpy, torch, deepinv, matplotlib) and ipykernel, then forks a "zygote" that waits on a
Unix socket.  The kernel command nbclient launches is a small client (``attach``, the standard
library only) that asks the zygote to fork; the fork takes the client's working folder, environment
and standard streams, sets ``sys.argv`` and ``sys.path[0]`` as ``python -m ipykernel_launcher``
would, and starts IPKernelApp on the client's connection file.  The client stays the process
nbclient manages: it forwards signals to the kernel and exits when the kernel does (and the kernel
exits when the client is killed).  A notebook that misses an import or reaches for a project module
therefore fails exactly as in a new ``python -m ipykernel_launcher``; only the interpreter's module
cache is shared, and only with modules the notebooks import themselves.  Off Linux, or with
``NOTEBOOK_KERNELS=spawn``, every kernel is started from scratch by nbclient instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

RESULT = "NOTEBOOK-RESULT "
TIMEOUT = 300  # seconds per cell; fast mode needs far less
PRELOAD = ("numpy", "torch", "deepinv", "matplotlib", "ipykernel.kernelapp")
# Forking is tried on Linux only (macOS frameworks are not fork-safe); NOTEBOOK_KERNELS=spawn
# starts every kernel from scratch, as jupyter does.
FORK = os.environ.get("NOTEBOOK_KERNELS", "fork" if sys.platform == "linux" else "spawn") == "fork"


# -- The client: what nbclient launches as the kernel (standard library only) ---------------------
def attach(socket_path: str, connection_file: str) -> None:
    """Ask the zygote for a kernel on ``connection_file``; live as long as it does."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(socket_path)
    request = {"connection_file": connection_file, "cwd": os.getcwd(), "env": dict(os.environ)}
    socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = conn.recv(64)
        if not chunk:
            sys.exit("the zygote closed the connection before starting a kernel")
        answer += chunk
    pid = int(answer)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # nbclient's interrupt, stop
        signal.signal(signum, lambda s, _frame: os.kill(pid, s))
    while conn.recv(64):  # nothing is sent: recv returns b"" when the kernel has exited
        pass


# -- The zygote: forks a kernel per request --------------------------------------------------------
def _start_kernel(conn: socket.socket) -> None:
    """In the forked child: become the kernel the client on ``conn`` asked for."""
    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    request = json.loads(message)
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # parent_handle: exit if the zygote dies (jupyter's launcher passes its own pid the same way,
    # through JPY_PARENT_PID, which ipykernel read when the zygote imported it)
    parent = f"--IPKernelApp.parent_handle={os.getppid()}"
    sys.argv = ["ipykernel_launcher", "-f", request["connection_file"], parent]
    sys.path[0] = os.getcwd()  # as for `python -m ipykernel_launcher` run from there
    conn.sendall(f"{os.getpid()}\n".encode())

    import threading

    def exit_with_the_client():
        while conn.recv(64):
            pass
        os._exit(1)

    threading.Thread(target=exit_with_the_client, daemon=True).start()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


def _zygote(listener: socket.socket, stop: int) -> None:
    """Fork a kernel for every connection on ``listener``; exit when ``stop`` reaches EOF."""
    import selectors

    os.dup2(2, 1)  # stdout is the answer channel of the serving process: keep it clean
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped automatically
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(stop, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj == stop:
                os._exit(0)
            conn, _ = listener.accept()
            if os.fork() == 0:
                selector.close()
                listener.close()
                os.close(stop)
                status = 1
                try:
                    _start_kernel(conn)
                    status = 0
                finally:
                    os._exit(status)
            conn.close()


# -- The server: nbclient, one notebook per line of stdin -----------------------------------------
def _start_zygote() -> tuple[str, int]:
    """Import what the notebooks import, fork the zygote; its socket and the fd that stops it."""
    import importlib
    import tempfile

    # A new kernel sets this before the notebook imports matplotlib; the zygote imports it early.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    for name in PRELOAD:
        importlib.import_module(name)
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else "?"
    socket_path = os.path.join(tempfile.mkdtemp(prefix="kernels-"), "zygote.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen()
    stop_read, stop_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() == 0:
        os.close(stop_write)
        _zygote(listener, stop_read)
    os.close(stop_read)
    listener.close()
    print(f"kernel zygote ready ({threads} threads after the imports)", file=sys.stderr)
    return socket_path, stop_write


def serve() -> None:
    import re
    import time
    import traceback

    options = {}  # nbclient's default: `python -m ipykernel_launcher` for every notebook
    if FORK:
        from jupyter_client.manager import AsyncKernelManager

        socket_path, stop = _start_zygote()

        class ForkedKernelManager(AsyncKernelManager):
            def format_kernel_cmd(self, extra_arguments=None):
                script = os.path.abspath(__file__)
                connection_file = os.path.realpath(self.connection_file)
                return [sys.executable, "-I", "-S", script, "attach", socket_path, connection_file]

        options["kernel_manager_class"] = ForkedKernelManager
    import nbformat
    from nbclient import NotebookClient

    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the notebook chooses
    for line in sys.stdin:
        notebook, answer = line.strip(), {}
        start = time.perf_counter()
        try:
            nb = nbformat.read(notebook, as_version=4)
            client = NotebookClient(
                nb,
                timeout=TIMEOUT,
                kernel_name="python3",
                resources={"metadata": {"path": os.path.dirname(notebook)}},
                **options,
            )
            client.execute(env=env)
            nbformat.write(nb, notebook)
        except Exception:
            error = re.sub(r"\x1b\[[0-9;]*m", "", traceback.format_exc())  # no colours
            answer["error"] = error[-6000:]
        answer["seconds"] = round(time.perf_counter() - start, 1)
        print(RESULT + json.dumps(answer), flush=True)
    if FORK:
        os.close(stop)


if __name__ == "__main__":
    if sys.argv[1] == "attach":
        attach(*sys.argv[2:4])
    elif sys.argv[1] == "serve":
        serve()
    else:
        sys.exit(f"usage: {sys.argv[0]} serve | attach SOCKET CONNECTION_FILE")
