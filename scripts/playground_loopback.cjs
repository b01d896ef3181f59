// Preloaded into the Agents Playground (node --require): servers it starts without a host would
// listen on every network interface, letting anyone on the network drive the local bots; this
// makes them listen on loopback only.
"use strict";
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && (args.length === 1 || typeof args[1] === "function")) {
    args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
