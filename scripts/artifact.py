"""After `make build`: what was built (arm64 and x86_64 builds leave the same path), and its size
as Lambda takes it, zipped (deflate, level 9). `make deploy` (deploy.py) reads the
architecture with `machine`.

    python scripts/artifact.py .aws-sam/build/ReceiverFunction/bootstrap
"""

import io
import pathlib
import sys
import zipfile

MACHINES = {62: "x86_64", 183: "arm64"}  # ELF e_machine


def machine(binary):
    """The architecture an ELF executable's bytes are for, as Lambda names it."""
    number = int.from_bytes(binary[18:20], "little")
    return MACHINES.get(number, f"ELF machine {number}")


def main():
    path = pathlib.Path(sys.argv[1])
    binary = path.read_bytes()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        package.writestr("bootstrap", binary)
    print(
        f"{path}: built for {machine(binary)}, "
        f"{len(binary):,} bytes, {len(archive.getvalue()):,} bytes zipped"
    )


if __name__ == "__main__":
    main()
