"""A small MCP server written with the official Python SDK (``MCPServer``): ``echo`` only.

``python sdk_echo.py`` serves stdio; ``python sdk_echo.py http PORT`` serves Streamable HTTP on
127.0.0.1:PORT (used by the benchmark as the direct HTTP baseline).
"""

from __future__ import annotations

import sys

from mcp.server import MCPServer

server = MCPServer("sdk-echo")


@server.tool()
def echo(message: str) -> str:
    """Echoes the message back."""
    return f"Echo: {message}"


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]), json_response=True)
    else:
        server.run()
