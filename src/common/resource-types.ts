/**
 * The JSON:API type names of the resources this service serves, in one leaf module: purchases
 * and reservations name each other in their documents, and their modules import each other.
 */
export const TICKET_OPTIONS_TYPE = 'ticket_options';
export const PURCHASES_TYPE = 'purchases';
export const RESERVATIONS_TYPE = 'reservations';
/** Users are not managed here: any UUID names one. */
export const USERS_TYPE = 'users';
