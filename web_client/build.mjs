// The build: copy the one browser module we take from npm into vendor/ (served under /static/vendor/).
// No bundler: the client is plain ES modules.
import { copyFileSync, mkdirSync } from "node:fs";

mkdirSync("vendor", { recursive: true });
copyFileSync("node_modules/socket.io-client/dist/socket.io.esm.min.js", "vendor/socket.io.esm.min.js");
console.log("web_client: vendor/socket.io.esm.min.js");
// Chart.js for the admin view's plots: its UMD build (no bare imports), loaded only on that screen.
copyFileSync("node_modules/chart.js/dist/chart.umd.min.js", "vendor/chart.umd.min.js");
console.log("web_client: vendor/chart.umd.min.js");

// The wheel ships the built client: the files served under / and /static/ are copied into the Python package
// (signaling/web/, not in git), which a non-editable install serves when web_client/ is not beside it.
import { cpSync, rmSync } from "node:fs";
const packaged = "../signaling/web";
rmSync(packaged, { recursive: true, force: true });
for (const part of ["index.html", "sw.js", "css", "js", "vendor"]) cpSync(part, `${packaged}/${part}`, { recursive: true });
console.log("web_client: copied into signaling/web for the wheel");
