# Setup (the same cell opens every notebook): in Colab, install the course package;
# everywhere, seed Python/NumPy/torch, choose the device and scale, apply the plot style.
import sys

if "google.colab" in sys.modules:
    %pip install --quiet "ntcourse @ git+https://github.com/entropic-forces-course/entropic-forces"

import ntcourse as nt

rt = nt.setup()
