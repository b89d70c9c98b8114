"""The program's name, which starts every message a job writes, and the exit statuses of a job."""

import signal

PROG = "nst-tf"

EXIT_OK = 0
EXIT_NON_FINITE = 1
EXIT_BAD_INPUT = 2
EXIT_SAVE_FAILED = 3
EXIT_SKIPPED = 4

#: Every status the command exits with, and what it means (docs/statuses-and-files.md lists the same).
EXIT_STATUSES = {
    EXIT_OK: "done",
    EXIT_NON_FINITE: "the total cost became NaN or infinite; the last image of finite cost is saved",
    EXIT_BAD_INPUT: "bad input: one line on standard error, nothing created or written",
    EXIT_SAVE_FAILED: "an image could not be saved (disk full, ...): one line; the latest image is kept elsewhere",
    EXIT_SKIPPED: "several content images with --on_error skip: some could not be read (each named in one line); "
    "the others are done",
    128 + signal.SIGHUP: "SIGHUP (terminal closed): the latest image is saved",
    128 + signal.SIGINT: "Ctrl-C (SIGINT): the latest image is saved",
    128 + signal.SIGTERM: "SIGTERM (kill, timeout, batch schedulers): the latest image is saved",
}
