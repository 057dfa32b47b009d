"""Devices (runners): where a compiled model runs when it does not run in this process.

    qemu[:CPU]              qemu-aarch64 on this machine (correctness and instruction counts)
    ssh:[USER@]HOST[:PORT]  a machine reached with ssh/scp
    adb[:SERIAL]            an Android device reached with adb

transport.py moves files and runs commands (local, ssh, adb); device.py opens a device from
its string; model.py runs a compiled model there through its npas_bench; qemu.py builds the
emulator command line.
"""
