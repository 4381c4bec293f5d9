// The build: copy the one browser module we take from npm into vendor/ (served under /static/vendor/).
// No bundler: the client is plain ES modules.
import { copyFileSync, mkdirSync } from "node:fs";

mkdirSync("vendor", { recursive: true });
copyFileSync("node_modules/socket.io-client/dist/socket.io.esm.min.js", "vendor/socket.io.esm.min.js");
console.log("web_client: vendor/socket.io.esm.min.js");
