// The project PKI, made with the openssl CLI: an EC P-256 CA, a server certificate for NATS
// (serverAuth, SAN 127.0.0.1 + localhost + extra hosts) and client certificates for mutual TLS
// (clientAuth). Private keys never touch the disk with a mode other than 0600: openssl writes them
// to stdout and we store them atomically. Existing valid files are reused, so this is idempotent.
import { execFile } from "node:child_process";
import { X509Certificate, createPrivateKey, randomBytes } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GridtuneError } from "../../protocol/errors.ts";
import { type Identity, identityId, parseIdentity } from "../../protocol/identity.ts";
import { ensurePrivateDir, writeFileAtomic } from "./fsutil.ts";

export interface PkiPaths {
  dir: string;
  caFile: string;
  caKeyFile: string;
  certFile: string;
  keyFile: string;
}
export interface ClientCertPaths {
  caFile: string;
  certFile: string;
  keyFile: string;
}

const CA_DAYS = 3650;
const LEAF_DAYS = 825;
/** Certificates expiring within this window are re-issued rather than reused. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

export function pkiPaths(dir: string): PkiPaths {
  return {
    dir,
    caFile: join(dir, "ca.pem"),
    caKeyFile: join(dir, "ca-key.pem"),
    certFile: join(dir, "server.pem"),
    keyFile: join(dir, "server-key.pem"),
  };
}

/** Creates (or reuses) the CA and the server certificate in `dir`. */
export async function ensurePki(dir: string, opts: { hosts?: string[] } = {}): Promise<PkiPaths> {
  const p = pkiPaths(dir);
  await ensurePrivateDir(dir);
  const hosts = [...new Set(["127.0.0.1", "localhost", ...(opts.hosts ?? [])])];
  let ca = await loadValid(p.caFile, p.caKeyFile);
  if (!ca || !ca.cert.ca) {
    await makeCa(p);
    ca = await loadValid(p.caFile, p.caKeyFile);
    if (!ca) throw new GridtuneError("INTERNAL", `openssl produced an unusable CA in ${dir}`);
  }
  const server = await loadValid(p.certFile, p.keyFile, ca.cert);
  if (!server || !hosts.every((h) => coversHost(server.cert, h))) {
    await issueLeaf(p, "server", "/O=gridtune/CN=nats-server", p.certFile, p.keyFile, hosts);
  }
  return p;
}

/** Issues (or reuses) a client certificate for mutual TLS, under `<dir>/clients/`. */
export async function issueClientCert(dir: string, identity: Identity): Promise<ClientCertPaths> {
  const id = parseIdentity(identity);
  const p = pkiPaths(dir);
  const ca = await loadValid(p.caFile, p.caKeyFile);
  if (!ca)
    throw new GridtuneError("NOT_FOUND", `no valid project CA in ${dir}; run ensurePki first (stack start)`);
  const clients = join(dir, "clients");
  await ensurePrivateDir(clients);
  const certFile = join(clients, `${identityId(id)}.pem`);
  const keyFile = join(clients, `${identityId(id)}-key.pem`);
  if (!(await loadValid(certFile, keyFile, ca.cert))) {
    // RFC 2253 order as nats-server's verify_and_map sees it: CN=agent-a1,OU=site-alpha,O=gridtune.
    const subject =
      id.role === "agent"
        ? `/O=gridtune/OU=site-${id.site}/CN=agent-${id.agent}`
        : id.role === "user"
          ? `/O=gridtune/OU=users/CN=user-${id.user}`
          : `/O=gridtune/CN=${identityId(id)}`;
    await issueLeaf(p, "client", subject, certFile, keyFile, []);
  }
  return { caFile: p.caFile, certFile, keyFile };
}

function coversHost(cert: X509Certificate, host: string): boolean {
  return isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;
}

/** The certificate and key, when both exist, match, are signed by `issuer` and are not near expiry. */
async function loadValid(
  certFile: string,
  keyFile: string,
  issuer?: X509Certificate,
): Promise<{ cert: X509Certificate } | undefined> {
  try {
    const cert = new X509Certificate(await readFile(certFile));
    const key = createPrivateKey(await readFile(keyFile));
    if (!cert.checkPrivateKey(key)) return undefined;
    if (Date.parse(cert.validTo) - Date.now() < RENEW_BEFORE_MS) return undefined;
    if (issuer && !cert.verify(issuer.publicKey)) return undefined;
    return { cert };
  } catch {
    return undefined; // missing or unreadable: make a new one
  }
}

async function makeCa(p: PkiPaths): Promise<void> {
  const key = await newKey();
  await writeFileAtomic(p.caKeyFile, key, 0o600);
  const cert = await openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      p.caKeyFile,
      "-sha256",
      "-days",
      String(CA_DAYS),
      "-subj",
      "/O=gridtune/CN=gridtune project CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    undefined,
  );
  await writeFileAtomic(p.caFile, cert, 0o644);
  // A new CA invalidates every certificate signed by the old one.
  await rm(p.certFile, { force: true });
}

async function issueLeaf(
  p: PkiPaths,
  kind: "server" | "client",
  subject: string,
  certFile: string,
  keyFile: string,
  hosts: string[],
): Promise<void> {
  const key = await newKey();
  await writeFileAtomic(keyFile, key, 0o600);
  const csr = await openssl(["req", "-new", "-key", keyFile, "-subj", subject], undefined);
  const ext = [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    `extendedKeyUsage=${kind === "server" ? "serverAuth" : "clientAuth"}`,
  ];
  if (hosts.length > 0) {
    ext.push(`subjectAltName=${hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(",")}`);
  }
  const extFile = join(tmpdir(), `gridtune-ext-${randomBytes(6).toString("hex")}.cnf`);
  await writeFileAtomic(extFile, ext.join("\n") + "\n", 0o600);
  try {
    const cert = await openssl(
      [
        "x509",
        "-req",
        "-CA",
        p.caFile,
        "-CAkey",
        p.caKeyFile,
        "-set_serial",
        `0x${randomBytes(16).toString("hex")}`,
        "-days",
        String(LEAF_DAYS),
        "-sha256",
        "-extfile",
        extFile,
      ],
      csr,
    );
    await writeFileAtomic(certFile, cert, 0o644);
  } finally {
    await rm(extFile, { force: true });
  }
}

/** An EC P-256 private key in PKCS#8 PEM, returned in memory (never written by openssl itself). */
function newKey(): Promise<string> {
  return openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], undefined);
}

function openssl(args: string[], stdin: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile("openssl", args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const hint =
          (err as NodeJS.ErrnoException).code === "ENOENT"
            ? "openssl is not installed: apt-get install -y openssl"
            : stderr.trim();
        reject(new GridtuneError("INTERNAL", `openssl ${args[0] ?? ""} failed: ${hint}`, { cause: err }));
      } else resolve(stdout);
    });
    // openssl may exit before reading its input: an EPIPE here is not an error of ours.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(stdin ?? "");
  });
}
