import { InvalidArgumentError, type Command } from 'commander';
import { commandIo, DEFAULT_AGE_KEY_FILE } from '../context.ts';
import type { CommonOptions, SetOptions } from '../../flows/sops.ts';
import type { CommandGroup } from '../program.ts';

type SetCliOptions = Omit<SetOptions, 'quiet'>;

/**
 * The native SOPS commands. Only flags live here; each action imports the engine when it runs,
 * so `--help` stays cheap and encrypt/decrypt never load the Kubernetes or GitHub clients.
 */

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

function io(cmd: Command, types: boolean): Command {
  cmd
    .option('-i, --in-place', 'write the result over the input file (atomic, keeps the file mode) instead of stdout')
    .option('--output <file>', 'write the result to this file instead of stdout')
    .option('--config <file>', 'use this .sops.yaml instead of searching from the current folder up (or set SOPS_CONFIG)');
  if (types) cmd.option('--input-type <type>', 'yaml, json, dotenv, ini or binary (default: from the file extension, binary if unknown)');
  return cmd;
}

type Runner = 'runEncrypt' | 'runDecrypt' | 'runUpdateKeys' | 'runRotate';

/** An action that loads the engine only when the command runs. */
function lazily(runner: Runner): (files: string[], opts: CommonOptions, cmd: Command) => Promise<void> {
  return async (files, opts, cmd) => {
    const run = await import('../../flows/sops.ts');
    await run[runner](files, opts, commandIo(cmd));
  };
}

const awsProfileOption = ['--aws-profile <name>', 'the AWS profile (~/.aws/config) for the --kms keys; recorded in the file as aws_profile'] as const;
const encryptionContextOption = ['--encryption-context <pairs>', 'AWS KMS encryption context for the --kms keys, key:value pairs separated by commas'] as const;

const keyFileOption = [
  '--key-file <file>',
  `an age key file or an armored OpenPGP key (repeatable): identities to decrypt with, in addition to SOPS_AGE_KEY, SOPS_AGE_KEY_FILE and ${DEFAULT_AGE_KEY_FILE}; PGP public keys to encrypt to`,
  collect,
] as const;

/** The native SOPS commands: the bin in dist/ sends them to their own bundle (src/cli-sops.ts). */
export const SOPS_GROUP: CommandGroup = [['encrypt', 'decrypt', 'set', 'unset', 'updatekeys', 'rotate', 'check'], registerSops];

function registerSops(program: Command): void {
  io(program.command('encrypt'), true)
    .argument('<file...>', 'plaintext files to encrypt')
    .description('encrypt files as sops does, with the recipients and rules of the first matching .sops.yaml creation rule, or those given as flags')
    .option('--output-type <type>', 'yaml, json, dotenv, ini or binary (default: the input type)')
    .option('--age <recipients>', 'age recipient(s), comma-separated (repeatable; or SOPS_AGE_RECIPIENTS)', collect)
    .option('--pgp <fingerprints>', 'OpenPGP fingerprint(s), comma-separated (repeatable; or SOPS_PGP_FP); encrypted through gpg or a --key-file', collect)
    .option(
      '--kms <arns>',
      'AWS KMS key ARN(s), comma-separated, each optionally +arn:aws:iam::ACCOUNT:role/NAME to assume (repeatable; or SOPS_KMS_ARN); AWS credentials and AWS_ENDPOINT_URL_KMS as the AWS CLI reads them',
      collect,
    )
    .option(...awsProfileOption)
    .option(...encryptionContextOption)
    .option(
      '--hc-vault-transit <uris>',
      'HashiCorp Vault transit key URI(s) like https://vault:8200/v1/transit/keys/NAME, comma-separated (repeatable; or SOPS_VAULT_URIS); token from VAULT_TOKEN or ~/.vault-token',
      collect,
    )
    .option('--encrypted-regex <re>', 'encrypt only values under keys matching this regex (e.g. ^(data|stringData)$ for Kubernetes Secrets)')
    .option('--unencrypted-regex <re>', 'leave values under keys matching this regex in clear')
    .option('--encrypted-suffix <suffix>', 'encrypt only values under keys ending with this suffix')
    .option('--unencrypted-suffix <suffix>', 'leave values under keys ending with this suffix in clear (default: _unencrypted)')
    .option('--encrypted-comment-regex <re>', 'encrypt only what follows a comment matching this regex')
    .option('--unencrypted-comment-regex <re>', 'leave what follows a comment matching this regex in clear')
    .option('--mac-only-encrypted', 'compute the MAC over encrypted values only, so plaintext fields may be edited (e.g. by kustomize)')
    .option('--shamir-secret-sharing-threshold <n>', 'with several key groups: how many are needed to decrypt', int)
    .option(...keyFileOption)
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  fluxstrap encrypt --in-place clusters/prod/secrets/db.yaml',
        "  fluxstrap encrypt --age age1… --encrypted-regex '^(data|stringData)$' secret.yaml > secret.enc.yaml",
        '  fluxstrap encrypt --pgp 35C1A64CD7FC0AB6EB66756B2445463C3234ECE1 -i app.env',
        '  fluxstrap encrypt --kms arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab -i secret.yaml',
      ].join('\n'),
    )
    .action(lazily('runEncrypt'));

  io(program.command('decrypt'), true)
    .argument('<file...>', 'sops-encrypted files')
    .description('decrypt sops files with the age and OpenPGP keys at hand; the MAC is verified')
    .option('--output-type <type>', "yaml, json, dotenv, ini or binary (default: the input type, or --output's extension)")
    .option('--ignore-mac', 'decrypt even if the MAC does not match (the file was edited by hand)')
    .option(
      '--extract <path>',
      'print only the value at this path, sops\' syntax: \'["stringData"]["password"]\' (a string as it is, a map in the output type)',
    )
    .option(...keyFileOption)
    .addHelpText(
      'after',
      [
        '',
        `Keys: SOPS_AGE_KEY, SOPS_AGE_KEY_CMD, SOPS_AGE_KEY_FILE, ${DEFAULT_AGE_KEY_FILE}, --key-file, and the gpg keyring; AWS KMS entries with the AWS credentials of the environment, Vault transit entries with VAULT_TOKEN or ~/.vault-token.`,
        '',
        'Examples:',
        '  fluxstrap decrypt clusters/prod/secrets/db.yaml',
        '  fluxstrap decrypt --extract \'["stringData"]["password"]\' clusters/prod/secrets/db.yaml',
        '  fluxstrap decrypt --key-file ./age.agekey --output-type json secret.yaml',
        '  fluxstrap decrypt --in-place app.env',
      ].join('\n'),
    )
    .action(lazily('runDecrypt'));

  const valueEdit = (name: 'set' | 'unset', description: string, examples: string[]) =>
    program
      .command(name)
      .argument('<file>', 'a sops-encrypted file, changed in place')
      .argument('<path>', 'the value\'s path, sops\' syntax: \'["stringData"]["password"]\', \'["list"][0]\'')
      .description(description)
      .option('--config <file>', 'use this .sops.yaml instead of searching from the current folder up (for its store settings)')
      .option('--input-type <type>', 'yaml, json, dotenv or ini (default: from the file extension)')
      .option(...keyFileOption)
      .addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}`);
  valueEdit(
    'set',
    'set one value of an encrypted file, read from stdin or typed unseen at the terminal (never an argument, so never in shell history); every other value keeps its exact ciphertext, so the diff is that line, lastmodified and mac; the same value again changes nothing',
    [
      'fluxstrap set clusters/prod/secrets/db.yaml \'["stringData"]["password"]\'      # asks for the value',
      'pwgen 32 1 | fluxstrap set clusters/prod/secrets/db.yaml \'["stringData"]["password"]\'',
      'echo 5432 | fluxstrap set --json-value app.yaml \'["db"]["port"]\'',
    ],
  )
    .option('--json-value', 'the value is JSON (a number, true/false, a map or a list) instead of a string')
    .option('--allow-empty', 'accept an empty value (without it, empty stdin is an error: a failed command before | pipes nothing)')
    .action(async (file: string, path: string, opts: SetCliOptions, cmd: Command) => {
      const { runSet } = await import('../../flows/sops.ts');
      await runSet(file, path, opts, commandIo(cmd));
    });
  valueEdit('unset', 'remove one value (or map entry, or list element) of an encrypted file; a path that is not there changes nothing', [
    'fluxstrap unset clusters/prod/secrets/db.yaml \'["stringData"]["old-token"]\'',
  ]).action(async (file: string, path: string, opts: SetCliOptions, cmd: Command) => {
    const { runUnset } = await import('../../flows/sops.ts');
    await runUnset(file, path, opts, commandIo(cmd));
  });

  program
    .command('updatekeys')
    .argument('[file...]', 'sops-encrypted files')
    .description(
      're-encrypt the data key for the recipients of the matching .sops.yaml creation rule; values, MAC and lastmodified stay as they are; files are updated in place',
    )
    .option('--config <file>', 'use this .sops.yaml instead of searching from the current folder up')
    .option('--input-type <type>', 'yaml, json, dotenv, ini or binary (default: from the file extension)')
    .option('--shamir-secret-sharing-threshold <n>', 'with several key groups: how many are needed to decrypt', int)
    .option(...keyFileOption)
    .option(
      '--cluster <name>',
      'instead of files: every SOPS file the cluster reaches (its folder and the Flux Kustomizations it applies, wherever their spec.path is)',
    )
    .option('--repo <dir>', 'with --cluster: the repository root (default: the current folder)')
    .addHelpText(
      'after',
      '\nExamples:\n  fluxstrap updatekeys clusters/prod/secrets/*.yaml\n  fluxstrap updatekeys --key-file old.agekey secret.yaml\n  fluxstrap updatekeys --cluster prod --key-file old.agekey',
    )
    .action(lazily('runUpdateKeys'));

  io(program.command('rotate'), true)
    .argument('<file...>', 'sops-encrypted files')
    .description('generate a new data key and re-encrypt every value; optionally add or remove recipients')
    .option('--add-age <recipient>', 'add an age recipient to the first key group (repeatable)', collect)
    .option('--rm-age <recipient>', 'remove an age recipient (repeatable)', collect)
    .option('--add-pgp <fingerprint>', 'add an OpenPGP fingerprint to the first key group (repeatable)', collect)
    .option('--rm-pgp <fingerprint>', 'remove an OpenPGP fingerprint (repeatable)', collect)
    .option('--add-hc-vault-transit <uri>', 'add a Vault transit key URI to the first key group (repeatable)', collect)
    .option('--rm-hc-vault-transit <uri>', 'remove a Vault transit key URI (repeatable)', collect)
    .option('--add-kms <arns>', 'add AWS KMS key ARN(s) (arn[+roleArn], comma-separated) to the first key group (repeatable)', collect)
    .option('--rm-kms <arns>', 'remove AWS KMS key ARN(s); --aws-profile and --encryption-context must match the entry (repeatable)', collect)
    .option(...awsProfileOption)
    .option(...encryptionContextOption)
    .option('--ignore-mac', 'rotate even if the MAC does not match')
    .option(...keyFileOption)
    .addHelpText('after', '\nExamples:\n  fluxstrap rotate -i secret.yaml\n  fluxstrap rotate -i --add-age age1new… --rm-age age1old… secret.yaml')
    .action(lazily('runRotate'));

  program
    .command('check')
    .argument('[path...]', 'files or folders to check (default: the current folder)')
    .description(
      'find secrets that should be encrypted and are not (Kubernetes Secrets with plaintext data/stringData, files matching a .sops.yaml creation rule without sops metadata), files whose MAC fails, and with --key-file files that key cannot open; exit 1 on any finding',
    )
    .option('--config <file>', 'use this .sops.yaml instead of searching from the current folder up')
    .option(...keyFileOption)
    .option(
      '--cluster <name>',
      'check the SOPS files this cluster reaches (its folder and the Flux Kustomizations it applies, wherever their spec.path is) instead of paths; also finds Kustomizations that apply SOPS files without decryption',
    )
    .option('--repo <dir>', 'with --cluster: the repository root (default: the current folder)')
    .addHelpText(
      'after',
      [
        '',
        'One line per finding on stdout: `FILE: reason`. Works as a pre-commit hook:',
        '  - repo: local',
        '    hooks:',
        '      - id: fluxstrap-check',
        '        name: fluxstrap check (no plaintext secrets)',
        '        entry: npx fluxstrap check',
        '        language: system',
        '        files: \\.(ya?ml|json|env|ini)$',
        '',
        'Examples:',
        '  fluxstrap check',
        '  fluxstrap check --key-file ./prod.agekey clusters/prod',
        '  fluxstrap check --cluster prod --key-file ./prod.agekey   # every file the cluster reaches opens with that key',
      ].join('\n'),
    )
    .action(async (paths: string[], opts: { config?: string; keyFile?: string[]; cluster?: string; repo?: string }, cmd: Command) => {
      const { runCheck } = await import('../../flows/sops.ts');
      process.exitCode = await runCheck(paths, opts, commandIo(cmd));
    });
}
