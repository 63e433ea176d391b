// Petclinic single-page app: hash routes, one fetch per API call, DOM built with
// textContent only (stored data is never parsed as HTML). Element ids are documented at
// the top of index.html.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  const VIEWS = [
    'owners-view',
    'owner-form-view',
    'owner-view',
    'pet-form-view',
    'visit-form-view',
    'vets-view',
  ];

  // API field name -> input id, per form, to mark the fields an error names.
  const FIELDS = {
    owner: {
      firstName: 'owner-first-name',
      lastName: 'owner-last-name',
      address: 'owner-address',
      city: 'owner-city',
      telephone: 'owner-telephone',
    },
    pet: { name: 'pet-name', birthDate: 'pet-birth-date', type: 'pet-type' },
    visit: { date: 'visit-date', description: 'visit-description' },
  };

  // `errors` is every problem as {field, message}: a 400 lists every invalid field (the
  // first is `message`/`field`); other failures are one problem.
  class ApiError extends Error {
    constructor(status, message, field, errors) {
      super(message);
      this.status = status;
      this.field = field;
      this.errors = errors && errors.length ? errors : [{ field, message }];
    }
  }

  /** The `errors` of an API error body as {field, message}, or undefined. */
  function errorList(data) {
    if (!data || !Array.isArray(data.errors)) {
      return undefined;
    }
    return data.errors
      .filter((e) => e && typeof e.error === 'string')
      .map((e) => ({ field: typeof e.field === 'string' ? e.field : undefined, message: e.error }));
  }

  /** Calls the API; resolves to the parsed JSON body, rejects with an ApiError. */
  async function api(method, path, body) {
    const init = { method, headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, `cannot reach the server: ${e.message}`);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (!response.ok) {
      const message = data && data.error ? data.error : `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, message, data ? data.field : undefined, errorList(data));
    }
    return data;
  }

  /** An element with attributes (`text` sets textContent) and children. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === 'text') {
        node.textContent = value;
      } else {
        node.setAttribute(name, value);
      }
    }
    node.append(...children);
    return node;
  }

  function show(view) {
    for (const id of VIEWS) {
      $(id).hidden = id !== view;
    }
    $('app').dataset.view = view;
  }

  function setStatus(message, isError) {
    const status = $('status');
    status.textContent = message || '';
    status.classList.toggle('error', Boolean(isError));
  }

  function ownerName(owner) {
    return `${owner.firstName} ${owner.lastName}`;
  }

  // ---- forms --------------------------------------------------------------------------

  function clearFormError(form) {
    const error = $(`${form}-form-error`);
    error.hidden = true;
    error.textContent = '';
    for (const id of Object.values(FIELDS[form])) {
      $(id).removeAttribute('aria-invalid');
    }
  }

  /** Shows every problem of `err`, one per line, and marks each input they name (the
   * first one gets the focus). */
  function showFormError(form, err) {
    const error = $(`${form}-form-error`);
    const problems = err.errors || [{ field: err.field, message: err.message }];
    error.textContent = problems.map((p) => p.message).join('\n');
    error.hidden = false;
    const inputs = problems.map((p) => p.field && FIELDS[form][p.field]).filter(Boolean);
    for (const input of inputs) {
      $(input).setAttribute('aria-invalid', 'true');
    }
    if (inputs.length) {
      $(inputs[0]).focus();
    }
  }

  /** Runs `save` for a form submit with the button disabled; shows API errors. */
  async function submitForm(form, save) {
    clearFormError(form);
    const button = $(`${form}-submit`);
    button.disabled = true;
    try {
      await save();
    } catch (err) {
      showFormError(form, err);
    } finally {
      button.disabled = false;
    }
  }

  // ---- views --------------------------------------------------------------------------

  async function showOwners(lastName) {
    $('search-last-name').value = lastName;
    const query = lastName ? `?lastName=${encodeURIComponent(lastName)}` : '';
    const owners = await api('GET', `/api/owners${query}`);
    const rows = owners.map((owner) =>
      el(
        'tr',
        { 'data-testid': 'owner-row', id: `owner-row-${owner.id}`, 'data-owner-id': owner.id },
        el(
          'td',
          { 'data-testid': 'owner-name' },
          el('a', { 'data-testid': 'owner-link', href: `#/owners/${owner.id}`, text: ownerName(owner) }),
        ),
        el('td', { 'data-testid': 'owner-address', text: owner.address }),
        el('td', { 'data-testid': 'owner-city', text: owner.city }),
        el('td', { 'data-testid': 'owner-telephone', text: owner.telephone }),
        el('td', { 'data-testid': 'owner-pets', text: owner.pets.map((p) => p.name).join(', ') }),
      ),
    );
    $('owners-rows').replaceChildren(...rows);
    $('owners-empty').hidden = owners.length > 0;
    $('owners-table').hidden = owners.length === 0;
    show('owners-view');
  }

  async function showOwner(ownerId) {
    const owner = await api('GET', `/api/owners/${ownerId}`);
    $('owner-id').textContent = `#${owner.id}`;
    $('owner-full-name').textContent = ownerName(owner);
    $('owner-details-address').textContent = owner.address;
    $('owner-details-city').textContent = owner.city;
    $('owner-details-telephone').textContent = owner.telephone;
    $('edit-owner-button').onclick = () => {
      location.hash = `#/owners/${owner.id}/edit`;
    };
    $('add-pet-button').onclick = () => {
      location.hash = `#/owners/${owner.id}/pets/new`;
    };
    $('pets-list').replaceChildren(...owner.pets.map((pet) => petCard(owner, pet)));
    $('pets-empty').hidden = owner.pets.length > 0;
    show('owner-view');
  }

  function petCard(owner, pet) {
    const visits = pet.visits || [];
    const table = el(
      'table',
      { 'data-testid': 'visits-table', id: `visits-${pet.id}` },
      el('thead', {}, el('tr', {}, el('th', { text: 'Visit date' }), el('th', { text: 'Description' }))),
      el(
        'tbody',
        {},
        ...visits.map((visit) =>
          el(
            'tr',
            { 'data-testid': 'visit-row', 'data-visit-id': visit.id },
            el('td', { 'data-testid': 'visit-date', text: visit.date }),
            el('td', { 'data-testid': 'visit-description', class: 'visit-description', text: visit.description }),
          ),
        ),
      ),
    );
    table.hidden = visits.length === 0;
    const edit = el('button', {
      type: 'button',
      'data-testid': 'edit-pet-button',
      id: `edit-pet-button-${pet.id}`,
      text: 'Edit pet',
    });
    edit.onclick = () => {
      location.hash = `#/owners/${owner.id}/pets/${pet.id}/edit`;
    };
    const addVisit = el('button', {
      type: 'button',
      'data-testid': 'add-visit-button',
      id: `add-visit-button-${pet.id}`,
      text: 'Add visit',
    });
    addVisit.onclick = () => {
      location.hash = `#/owners/${owner.id}/pets/${pet.id}/visits/new`;
    };
    const empty = el('p', { 'data-testid': 'visits-empty', class: 'muted', text: 'No visits yet.' });
    empty.hidden = visits.length > 0;
    return el(
      'div',
      { class: 'pet', 'data-testid': 'pet', id: `pet-${pet.id}`, 'data-pet-id': pet.id, 'data-pet-name': pet.name },
      el(
        'dl',
        {},
        el('dt', { text: 'Name' }),
        el('dd', { 'data-testid': 'pet-name', text: pet.name }),
        el('dt', { text: 'Birth date' }),
        el('dd', { 'data-testid': 'pet-birth-date', text: pet.birthDate }),
        el('dt', { text: 'Type' }),
        el('dd', { 'data-testid': 'pet-type', text: pet.type.name }),
      ),
      table,
      empty,
      el('div', { class: 'actions' }, edit, addVisit),
    );
  }

  let ownerFormTarget = null; // owner id being edited, or null to create

  async function showOwnerForm(ownerId) {
    clearFormError('owner');
    ownerFormTarget = ownerId;
    const owner = ownerId
      ? await api('GET', `/api/owners/${ownerId}`)
      : { firstName: '', lastName: '', address: '', city: '', telephone: '' };
    $('owner-form-title').textContent = ownerId ? 'Edit owner' : 'Add owner';
    $('owner-submit').textContent = ownerId ? 'Update owner' : 'Add owner';
    for (const [field, id] of Object.entries(FIELDS.owner)) {
      $(id).value = owner[field];
    }
    show('owner-form-view');
    $('owner-first-name').focus();
  }

  function saveOwner() {
    return submitForm('owner', async () => {
      const body = {};
      for (const [field, id] of Object.entries(FIELDS.owner)) {
        body[field] = $(id).value;
      }
      const saved = ownerFormTarget
        ? await api('PUT', `/api/owners/${ownerFormTarget}`, body)
        : await api('POST', '/api/owners', body);
      location.hash = `#/owners/${saved.id}`;
    });
  }

  let petFormTarget = null; // { ownerId, petId (null to create) }

  async function showPetForm(ownerId, petId) {
    clearFormError('pet');
    petFormTarget = { ownerId, petId };
    const [owner, types, pet] = await Promise.all([
      api('GET', `/api/owners/${ownerId}`),
      api('GET', '/api/pettypes'),
      petId ? api('GET', `/api/owners/${ownerId}/pets/${petId}`) : null,
    ]);
    $('pet-form-title').textContent = petId ? 'Edit pet' : 'Add pet';
    $('pet-submit').textContent = petId ? 'Update pet' : 'Add pet';
    $('pet-form-owner').textContent = ownerName(owner);
    const options = [el('option', { value: '', text: 'Choose a type' })];
    for (const type of types) {
      options.push(el('option', { value: type.id, text: type.name }));
    }
    $('pet-type').replaceChildren(...options);
    $('pet-name').value = pet ? pet.name : '';
    $('pet-birth-date').value = pet ? pet.birthDate : '';
    $('pet-type').value = pet ? String(pet.type.id) : '';
    show('pet-form-view');
    $('pet-name').focus();
  }

  function savePet() {
    return submitForm('pet', async () => {
      const { ownerId, petId } = petFormTarget;
      const typeId = $('pet-type').value;
      const body = {
        name: $('pet-name').value,
        birthDate: $('pet-birth-date').value,
        type: typeId ? { id: Number(typeId) } : null,
      };
      if (petId) {
        await api('PUT', `/api/owners/${ownerId}/pets/${petId}`, body);
      } else {
        await api('POST', `/api/owners/${ownerId}/pets`, body);
      }
      location.hash = `#/owners/${ownerId}`;
    });
  }

  let visitFormTarget = null; // { ownerId, petId }

  async function showVisitForm(ownerId, petId) {
    clearFormError('visit');
    visitFormTarget = { ownerId, petId };
    const pet = await api('GET', `/api/owners/${ownerId}/pets/${petId}`);
    $('visit-form-pet').textContent = `${pet.name} (${pet.type.name}, born ${pet.birthDate})`;
    $('visit-date').value = '';
    $('visit-description').value = '';
    show('visit-form-view');
    $('visit-description').focus();
  }

  function saveVisit() {
    return submitForm('visit', async () => {
      const { ownerId, petId } = visitFormTarget;
      await api('POST', `/api/owners/${ownerId}/pets/${petId}/visits`, {
        date: $('visit-date').value,
        description: $('visit-description').value,
      });
      location.hash = `#/owners/${ownerId}`;
    });
  }

  async function showVets() {
    const vets = await api('GET', '/api/vets');
    const rows = vets.map((vet) =>
      el(
        'tr',
        { 'data-testid': 'vet-row', 'data-vet-id': vet.id },
        el('td', { 'data-testid': 'vet-name', text: `${vet.firstName} ${vet.lastName}` }),
        el('td', {
          'data-testid': 'vet-specialties',
          text: vet.specialties.length ? vet.specialties.map((s) => s.name).join(', ') : 'none',
        }),
      ),
    );
    $('vets-rows').replaceChildren(...rows);
    show('vets-view');
  }

  // ---- routing ------------------------------------------------------------------------

  /** Renders the view for the current location hash. */
  async function route() {
    const hash = location.hash.replace(/^#/, '') || '/owners';
    const [path, query = ''] = hash.split('?');
    const parts = path.split('/').filter(Boolean);
    const params = new URLSearchParams(query);
    const isId = (s) => /^[0-9]+$/.test(s || '');
    $('app').dataset.loading = 'true';
    setStatus('');
    try {
      if (parts[0] === 'vets' && parts.length === 1) {
        await showVets();
      } else if (parts[0] !== 'owners') {
        location.replace('#/owners');
      } else if (parts.length === 1) {
        await showOwners(params.get('lastName') || '');
      } else if (parts.length === 2 && parts[1] === 'new') {
        await showOwnerForm(null);
      } else if (!isId(parts[1])) {
        location.replace('#/owners');
      } else if (parts.length === 2) {
        await showOwner(parts[1]);
      } else if (parts.length === 3 && parts[2] === 'edit') {
        await showOwnerForm(parts[1]);
      } else if (parts.length === 4 && parts[2] === 'pets' && parts[3] === 'new') {
        await showPetForm(parts[1], null);
      } else if (parts.length === 5 && parts[2] === 'pets' && isId(parts[3]) && parts[4] === 'edit') {
        await showPetForm(parts[1], parts[3]);
      } else if (
        parts.length === 6 &&
        parts[2] === 'pets' &&
        isId(parts[3]) &&
        parts[4] === 'visits' &&
        parts[5] === 'new'
      ) {
        await showVisitForm(parts[1], parts[3]);
      } else {
        location.replace('#/owners');
      }
    } catch (err) {
      setStatus(err.message, true);
    } finally {
      $('app').dataset.loading = 'false';
    }
  }

  function init() {
    $('search-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const lastName = $('search-last-name').value.trim();
      const target = `#/owners${lastName ? `?lastName=${encodeURIComponent(lastName)}` : ''}`;
      if (location.hash === target) {
        route();
      } else {
        location.hash = target;
      }
    });
    $('add-owner-button').addEventListener('click', () => {
      location.hash = '#/owners/new';
    });
    $('owner-form').addEventListener('submit', (event) => {
      event.preventDefault();
      saveOwner();
    });
    $('pet-form').addEventListener('submit', (event) => {
      event.preventDefault();
      savePet();
    });
    $('visit-form').addEventListener('submit', (event) => {
      event.preventDefault();
      saveVisit();
    });
    $('owner-cancel').addEventListener('click', () => {
      location.hash = ownerFormTarget ? `#/owners/${ownerFormTarget}` : '#/owners';
    });
    $('pet-cancel').addEventListener('click', () => {
      location.hash = `#/owners/${petFormTarget.ownerId}`;
    });
    $('visit-cancel').addEventListener('click', () => {
      location.hash = `#/owners/${visitFormTarget.ownerId}`;
    });
    window.addEventListener('hashchange', route);
    route();
  }

  init();
})();
