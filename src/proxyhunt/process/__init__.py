"""Process-creation logs (Sysmon, Windows Security 4688, Defender, ASIM, auditd) and rclone command lines."""

from proxyhunt.process.event import HostAddress, ProcessEvent, ProcessExit, ProcessLogReport, ProcessLogSet
from proxyhunt.process.reader import read_process_logs
from proxyhunt.process.recognize import RcloneProcess, recognize_rclone

__all__ = [
    "HostAddress",
    "ProcessEvent",
    "ProcessExit",
    "ProcessLogReport",
    "ProcessLogSet",
    "RcloneProcess",
    "read_process_logs",
    "recognize_rclone",
]
