import platform
import sys

print(f"python {platform.python_version()} ok from {sys.executable}")
