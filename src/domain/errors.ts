/** Errors the domain and store raise; the API turns each into its status and body. */
export interface FieldIssue { loc: (string | number)[]; msg: string; type: string }

export class AppError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

export class NotFoundError extends AppError {
  constructor(what: string, key: string) { super(404, `${what} ${key} not found`); }
}

export class ValidationError extends AppError {
  constructor(readonly issues: FieldIssue[]) {
    super(422, issues.map((i) => `${i.loc.join('.')}: ${i.msg}`).join('; '));
  }
  static one(loc: (string | number)[], msg: string, type = 'value_error'): ValidationError {
    return new ValidationError([{ loc, msg, type }]);
  }
}

export class ConflictError extends AppError {
  constructor(message: string) { super(409, message); }
}
