import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def test_mirrored_on_two_logical_cpus_matches_one_device():
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, str(root / "tests" / "distribute_check.py")], capture_output=True,
                            text=True, timeout=300, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr[-3000:]
    curves = json.loads(result.stdout.strip().splitlines()[-1])
    assert curves["replicas"] == 2
    assert curves["single"][-1] < curves["single"][0]
    np.testing.assert_allclose(curves["mirrored"], curves["single"], rtol=0.02)
