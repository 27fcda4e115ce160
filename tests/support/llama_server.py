"""Runs llama.cpp's OpenAI-compatible server (the xllamacpp wheel) on 127.0.0.1 for the
real-model test: python3 llama_server.py MODEL.gguf PORT. It serves until it is killed;
GET /health answers 503 while the model loads and 200 once it is ready."""

import sys
import time

import xllamacpp

model, port = sys.argv[1], int(sys.argv[2])
params = xllamacpp.CommonParams()
params.model.path = model
params.hostnames = ["127.0.0.1"]
params.port = port
params.n_ctx = 8192
params.cpuparams.n_threads = 2
server = xllamacpp.Server(params)
print(f"llama.cpp server on 127.0.0.1:{port} with {model}", flush=True)
while True:
    time.sleep(3600)
