// Starts pouchdb-server (its own CLI, in this process) and creates the database named by
// POUCHDB_DB when it is missing, as a deployment's init step would: with --in-memory a restart
// loses every database, and CouchDB does not create one on a write. Used by
// tests/integration/pouchdb_test.cpp as the supervised unit, so a SIGKILL kills the server and
// the launcher together and the supervisor's restart runs both again.
//   node pouchdb_launch.js PKG_DIR PORT DB [pouchdb-server options...]
'use strict';
const http = require('http');
const path = require('path');
const [pkgDir, port, db, ...opts] = process.argv.slice(2);
process.argv = [process.argv[0], 'pouchdb-server', '--port', port, '--host', '127.0.0.1', ...opts];
require(path.join(pkgDir, 'node_modules', 'pouchdb-server', 'lib', 'index.js'));

// PUT /db until the server answers: 201 created, 412 already there.
function create() {
  const req = http.request({host: '127.0.0.1', port: Number(port), path: '/' + db, method: 'PUT'}, (res) => {
    res.resume();
    if (res.statusCode === 201 || res.statusCode === 412) {
      console.log(`pouchdb_launch: database ${db}: HTTP ${res.statusCode}`);
    } else {
      setTimeout(create, 100);
    }
  });
  req.on('error', () => setTimeout(create, 100));
  req.end();
}
setTimeout(create, 100);
